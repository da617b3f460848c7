"""Every role of every protocol as a process with durable state (specs/roles.md).

``wire`` is the line format, ``store`` the SQLite state file, ``process`` the
loop that runs one party, ``harness`` the router that runs a whole protocol
between processes; one module per protocol holds its roles.
"""
