"""XAPI simulator: one pool's xapi on the wire (XML-RPC and JSON-RPC), playing xcp-networkd too.

The data model, `event.from`, sessions and errors follow xapi (DESIGN.md §4, §7). Switch side
effects go to each host's backend (an `OvsHost`); a host whose backend is None has none, for
tests of API semantics only. All state sits behind one lock; `event.from` waits on its condition.

- `schema`, `store`, `db_actions`: the data model, the database and its event log, generated messages
- `host`, `pif`, `network`, `tunnel`, `vif`, `vm`, `vm_lifecycle`, `pool`, `certificate`,
  `sdn_controller`, `session`, `event`: the hand-written messages, one module per class (as xapi's `Xapi_*`)
- `networkd`: what xcp-networkd does on a host's switch
- `messages`, `dispatch`, `server`: the registry, one call, and the HTTP listeners
- `context`: the pool's state every message works on; `simulator`: the lab's `PoolSimulator`
"""

from sdnctl.lab.xapi.networkd import SDN_CA_NAME
from sdnctl.lab.xapi.simulator import PoolSimulator

__all__ = ["SDN_CA_NAME", "PoolSimulator"]
