"""What a serving stack *is*: the stack-file schema, the catalog, the sizing rules and the StackSpec.

Pure Python: nothing here imports Pulumi (the offline plan command imports it lazily).
"""

from .errors import SpecError, SpecErrors
from .loader import load_stack_file, spec_from_config, stack_files
from .spec import StackSpec

__all__ = ["SpecError", "SpecErrors", "StackSpec", "load_stack_file", "spec_from_config", "stack_files"]
