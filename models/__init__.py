"""Pydantic models and pure policy logic shared by every layer.

This package imports no other package of the project (and no I/O library), so the workflow
sandbox, the activities, the store and the command line can all use it.
"""
