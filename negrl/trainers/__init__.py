"""negrl trainers: thin subclasses of TRL / transformers trainers that own only their loss."""
