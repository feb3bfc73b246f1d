"""``If-Match: revision_number=N`` on the PUT and DELETE of a resource (Neutron's
``revision-if-match``): the change is made only if the resource is still at revision N, else
412 ``RevisionNumberConstraintFailed`` (see :mod:`ryu_sched.db.revisions`)."""

from __future__ import annotations

import contextlib

from ryu_sched.db import revisions


def if_match(headers: object, singular: str, resource_id: str
             ) -> contextlib.AbstractContextManager[None]:
    """A block in which the request's ``If-Match`` constraint (if any) holds."""
    header = headers.get("If-Match") if hasattr(headers, "get") else None
    revision = revisions.parse_if_match(header)
    model = revisions.model_for(singular)
    if revision is None or model is None:
        return contextlib.nullcontext()
    return revisions.constrained(revisions.RevisionConstraint(model, resource_id, revision))
