"""The only package that subclasses asyncssh classes.

listener.py accepts agents; outer.py authenticates them and answers
direct-tcpip; inner.py is the per-target SSH server run in process on that
channel; session.py relays one channel to the target; upstream.py logs in to
the target with a per-session certificate.
"""
