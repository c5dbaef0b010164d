"""The codec: quantisation (quantise), the one-file bitstream (bitstream), decoding and export (decode), CLI (cli)."""
