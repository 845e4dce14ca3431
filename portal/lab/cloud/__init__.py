"""The rehearsal lab's stand-in for the Microsoft cloud: Entra ID (Graph), Exchange Online and the
Entra Connect server, served by one process of its own (see DESIGN.md section 6).

- ``store``: the tenant's data in one SQLite file (stdlib sqlite3), with the Python API the lab's
  sync engine and scenario seeder call (a package, one module per API surface).
- ``app``: the ASGI application (Starlette) answering as Microsoft does: OAuth token endpoint,
  Graph v1.0/beta, Exchange ``InvokeCommand``, PowerShell-shaped endpoints; it composes one
  module per API surface (see its docstring for the layout and how to add a surface).
- ``server``: lifecycle (lab CA, start, stop, status, credentials), like ``portal.lab.samba``.

Nothing here imports Django, and nothing in the portal's production code paths imports this.
"""
