"""Where a stack runs: the ``gcp:*`` keys checked against Google Cloud's naming rules and the
catalog's regions (``catalog/regions.yaml``), for serving and cluster stacks alike.

A wrong region or zone otherwise fails only minutes into ``pulumi up`` (or, for an accelerator the
zone does not offer, when the node pool never gets a node), so it is refused here, naming the key
as written and the values that would work.
"""

from __future__ import annotations

import re

from .catalog import Regions
from .config import GcpConfig
from .errors import SpecError, did_you_mean

#: Google Cloud project ids: 6-30 characters, lowercase letters, digits and hyphens, a letter first
PROJECT_ID = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
#: a zone's suffix after its region: a letter, or an AI zone's ``ai<n><letter>``
ZONE_SUFFIX = re.compile(r"^(?:[a-z]|ai\d*[a-z]?)$")


def location_errors(g: GcpConfig, regions: Regions, accelerator: str | None = None) -> list[SpecError]:
    """Every problem with ``gcp:project``, ``gcp:region``, ``gcp:zone`` / ``gcp:zones`` (and, given
    the stack's accelerator, whether its zones offer it where the catalog knows)."""
    errors: list[SpecError] = []
    if not PROJECT_ID.match(g.project):
        errors.append(SpecError(
            "gcp:project", f'"{g.project}" is not a Google Cloud project id',
            "6-30 characters: lowercase letters, digits and hyphens, starting with a letter and not ending "
            "with a hyphen (the id, not the project's display name)"))
    if regions.names and g.region not in regions.names:
        errors.append(SpecError(
            "gcp:region", f'unknown region "{g.region}"{did_you_mean(g.region, regions.names)}',
            f"use a Google Cloud region (`gcloud compute regions list`); if it opened after the catalog's "
            f"list ({regions.source}), add it to stacks/catalog/regions.yaml"))
        return errors
    if g.zone and g.zones:
        errors.append(SpecError(
            "gcp:zones", "given together with gcp:zone",
            "use gcp:zone for a zonal cluster, or gcp:zones (without gcp:zone) for several zones"))
    zones = [("gcp:zone", g.zone)] if g.zone else [(f"gcp:zones[{i}]", z) for i, z in enumerate(g.zones or [])]
    offered = regions.accelerator_zones.get(accelerator or "")
    covered = offered is not None and g.region in regions.accelerator_zones_regions
    for key, zone in zones:
        region, _, suffix = zone.rpartition("-")
        if region != g.region or not ZONE_SUFFIX.match(suffix):
            errors.append(SpecError(key, f'zone "{zone}" is not in region "{g.region}"',
                                    f"use a zone of {g.region}, like {g.region}-a"))
        elif covered and zone not in (offered or ()):
            here = [z for z in offered or () if z.startswith(g.region + "-")]
            errors.append(SpecError(
                key, f"{accelerator} is not offered in {zone} ({regions.accelerator_zones_source})",
                f"use {' or '.join(here)}" if here else
                f"{g.region} has no zone with {accelerator}: use one of {', '.join(offered or ())} "
                "(and their region)"))
    if covered and not zones and not any(z.startswith(g.region + "-") for z in offered or ()):
        errors.append(SpecError(
            "gcp:region", f"{accelerator} is offered in no zone of {g.region} ({regions.accelerator_zones_source})",
            f"use a region with it: {', '.join(offered or ())}"))
    return errors
