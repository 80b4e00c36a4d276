"""The one exception family of sdnctl: each error says what, which value, and the fix."""


class SdnctlError(Exception):
    """Base of every error sdnctl raises on purpose."""


class ConfigError(SdnctlError):
    """The configuration file or a command-line value is wrong."""


class XapiError(SdnctlError):
    """A XAPI call failed in a way the caller must handle."""


class OvsdbError(SdnctlError):
    """An OVSDB connection or transaction failed."""


class RuleError(SdnctlError):
    """A traffic rule is malformed."""


class LabError(SdnctlError):
    """The lab could not be started, driven or stopped."""


class CertError(SdnctlError):
    """A certificate or key is missing, invalid, expired or exposed."""


class OpenFlowError(SdnctlError):
    """An OpenFlow connection, request or flow-mod failed; the message says which switch and why."""
