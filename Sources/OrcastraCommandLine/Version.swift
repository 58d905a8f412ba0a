// `OrcastraVersion.current` is defined in OrcastraStateMachines (the worker library reports it in
// the registry too) and re-exported here for the executables.
@_exported import enum OrcastraStateMachines.OrcastraVersion
