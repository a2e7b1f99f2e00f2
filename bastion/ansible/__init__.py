"""Ansible's module payloads (AnsiballZ), read back into a module and its arguments
(ansiballz.py), and each module as the commands with the same effect (modules.py)."""
