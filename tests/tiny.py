"""The tiny random-weight backbone the tests run on: a few MB, built in seconds on a CPU, never
downloaded (`simclip/model_configs/simclip-tiny.json`, seeded weights). Its verdicts mean nothing;
the tests check behaviour, not accuracy."""

# The command-line options of every command that builds a backbone (simclip <command>, the server).
TINY = ["--model", "simclip-tiny", "--pretrained", "none", "--device", "cpu"]
