// The rules speak the shared vocabulary (stages, Hyper-V's texts); it lives in
// `MigrationVocabulary`, shared with the real service (docs/architecture.md).
@_exported import MigrationVocabulary
