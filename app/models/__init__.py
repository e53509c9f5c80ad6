"""The model catalog (assets/models.toml), the local store of installed models,
downloads with resume and checksums, and RAM-tier recommendations."""
