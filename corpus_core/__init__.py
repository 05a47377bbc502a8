"""The floor every other package stands on: records and their Arrow schemas, the stage
contract with declared tables, settings, drop reasons, errors, the SPDX policy, special
tokens and file helpers. It imports nothing of the project (docs/ARCHITECTURE.md#layers)."""
