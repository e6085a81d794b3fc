//! Noise schedulers, configured from `scheduler/scheduler_config.json` as diffusers does.
