"""What a stack *is* (a serving stack, or a cluster stack for serving stacks to join): the stack-file
schema, the catalog, the sizing rules, the StackSpec and the ClusterSpec.

Pure Python: nothing here imports Pulumi (the offline plan command imports it lazily).
"""

from .cluster_spec import ClusterSpec
from .errors import SpecError, SpecErrors
from .loader import any_spec_from_config, load_any_stack_file, load_stack_file, spec_from_config, stack_files
from .spec import StackSpec

__all__ = ["ClusterSpec", "SpecError", "SpecErrors", "StackSpec", "any_spec_from_config", "load_any_stack_file",
           "load_stack_file", "spec_from_config", "stack_files"]
