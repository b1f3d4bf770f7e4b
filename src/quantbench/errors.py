"""quantbench's own errors. Each message says what is wrong and what to do about it, so a job's log
ends with one line a user can act on (failures.explain prints it as it is)."""


class QuantbenchError(Exception):
    """Base class of every error quantbench raises on purpose."""


class ConfigError(QuantbenchError, ValueError):
    """The study configuration is invalid; the message names the key."""


class DataError(QuantbenchError, ValueError):
    """An input (a text, a data file, a labelled set) cannot serve what the config asks of it."""


class DeviceUnavailable(QuantbenchError, RuntimeError):
    """The device asked for cannot be used by this process or this build of a library."""


class Unsupported(QuantbenchError, RuntimeError):
    """This variant's runtime cannot do what a task asks (e.g. hidden states from llama.cpp)."""


class CorruptArtifact(QuantbenchError, RuntimeError):
    """An artifact's files do not match the checksums recorded when it was written."""


class ArtifactFailed(QuantbenchError, RuntimeError):
    """The artifact records a failed job (on_error: skip); nothing can be computed from it."""


class UnsafeModel(QuantbenchError, ValueError):
    """The model needs code shipped inside its folder, which quantbench never runs."""
