"""Run a command as systemd's MemoryDenyWriteExecute=yes would: PR_SET_MDWE (Linux 6.3+), inherited by execve.

Usage: python mdwe.py PROGRAM ARGS...; exits 2 where the kernel has no PR_SET_MDWE.
"""

import ctypes
import os
import sys

PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 1

libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
    print(f"PR_SET_MDWE: {os.strerror(ctypes.get_errno())}", file=sys.stderr)
    sys.exit(2)
os.execv(sys.argv[1], sys.argv[1:])
