"""Who is connecting: certificate authorities, certificates, identities."""

from bastion.identity.authorities import Authorities
from bastion.identity.model import Identity

__all__ = ["Authorities", "Identity"]
