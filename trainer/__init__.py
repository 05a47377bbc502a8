"""The bundled trainer (MQA decoder, FIM, shard loader); it reads the shards a build writes."""
