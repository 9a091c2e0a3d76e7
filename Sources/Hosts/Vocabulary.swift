// The simulated hosts speak the shared vocabulary (IPv4 subnets, the authentication and
// performance options, the VM-name rule); it lives in `MigrationVocabulary` (docs/architecture.md).
@_exported import MigrationVocabulary
