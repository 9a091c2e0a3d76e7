// The shared vocabulary in this module's API (stages, Hyper-V's texts, IPv4 subnets, the
// authentication and performance options, the VM-name rule) comes with `import MigrationService`;
// it lives in `MigrationVocabulary`, not in the simulator (docs/architecture.md).
@_exported import MigrationVocabulary
