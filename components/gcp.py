"""pulumi_gcp, with the subpackages the components use loaded up front.

pulumi_gcp loads a subpackage (every module in it) on first attribute access, and a few of those
modules warn at import time about misspelt names kept for compatibility
(``getTransferProjectServieAccount``...). Those warnings are about classes this project never uses,
so the subpackages are loaded here, once, with them silenced, instead of warning in every plan and test.
"""

import warnings

import pulumi_gcp as gcp

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    _ = (gcp.compute.Router, gcp.container.Cluster, gcp.projects.IAMMember, gcp.serviceaccount.Account,
         gcp.storage.Bucket)

__all__ = ["gcp"]
