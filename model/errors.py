"""The model package's one exception family.

Kept free of torch and pydantic imports so that `model.encoding` and `import model` stay cheap.
"""


class ModelError(Exception):
    """Base class of every error the local model package raises on purpose."""


class ConfigError(ModelError):
    """config.json is missing, unreadable, or lacks / mistypes a field the architecture needs."""


class CheckpointError(ModelError):
    """A checkpoint's tensors do not match the architecture (missing, unexpected, mis-shaped)."""


class TokenizerError(ModelError):
    """tokenizer.json / tokenizer_config.json is missing or a chat template failed to render."""


class EncodingError(ModelError):
    """A conversation cannot be rendered into DeepSeek-V3.2's prompt format (caller misuse)."""
