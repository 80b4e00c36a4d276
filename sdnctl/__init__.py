"""sdnctl: an Open vSwitch SDN controller for XCP-ng / XenServer pools."""
