"""Every side effect of a case: messages out, case-store reads and writes.

Activities are methods of classes that receive their clients (store, providers), so the worker
wires real ones and tests inject fakes. Each is idempotent by a key the workflow supplies.
"""
