"""Pure flow compiler: a model snapshot in, OpenFlow 1.3 flow specs out.

Nothing here imports os-ken, Ryu, SQLAlchemy or ryu_sched. Start with
:func:`flows.pipeline.desired_flows`; the input is described in :mod:`flows.model`, the
output in :mod:`flows.spec`, the tables in :mod:`flows.tables` and docs/pipeline.md.
"""
