"""`/v2.0/security-groups` and `/v2.0/security-group-rules`: thin handlers over
:mod:`ryu_sched.resources.security_groups` and :mod:`ryu_sched.resources.security_group_rules`.
"""

from ryu_sched.api.wsgi import Collection, Route, collection_routes
from ryu_sched.resources import security_group_rules as rules
from ryu_sched.resources import security_groups as groups

ROUTES: list[Route] = [
    *collection_routes(Collection(
        singular="security_group", plural="security_groups", url_name="security-groups",
        page=groups.page_security_groups, get=groups.get_security_group,
        create=groups.create_security_group, update=groups.update_security_group,
        delete=groups.delete_security_group)),
    *collection_routes(Collection(
        singular="security_group_rule", plural="security_group_rules",
        url_name="security-group-rules",
        page=rules.page_security_group_rules, get=rules.get_security_group_rule,
        create=rules.create_security_group_rule, update=rules.update_security_group_rule,
        delete=rules.delete_security_group_rule)),
]
