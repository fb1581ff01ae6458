"""``kaon trace``: a logical packet trace over the compiled host intents (like ``ovn-trace``).

``world`` holds what a trace reads (every host's :class:`~kaon.model.intent.HostIntent`
plus the names and ids the intents leave out: port names, rule ids, routers'
names, external networks); ``engine`` walks a packet through it — pure, no
I/O; ``source`` reads a world from the database in one read transaction
(the only module here that touches storage).
"""
