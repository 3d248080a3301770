"""Connecting to Temporal: the client (standard env config), search attributes, the dev server."""
