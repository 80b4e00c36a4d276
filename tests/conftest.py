"""Suite-wide settings: property tests judge correctness, not speed (a loaded CI core is slow)."""

from hypothesis import settings

settings.register_profile("sdnctl", deadline=None)
settings.load_profile("sdnctl")
