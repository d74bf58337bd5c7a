"""The SMS gateway companion: runs on an Android phone (Termux) and sends/receives SMS for the server.

Also ships a simulator backend, used by the tests and the load benchmarks.
"""

__version__ = "1.0.0"
