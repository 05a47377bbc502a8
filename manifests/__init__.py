"""What a build records: reasons, schemas and the writers of the manifests and run.json."""
