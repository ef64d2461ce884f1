"""The bottom layer: errors, atomic writes, image reading, content hashes, cache paths and the command-line machinery. Imports nothing else of the suite."""
