"""The lab: simulated XCP-ng pools (XAPI simulator) on real Open vSwitch processes."""
