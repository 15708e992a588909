"""Chores shared by every part of trimzoo, one helper each: atomic file
writes (:mod:`trimzoo.utils.io`), running a function in a fresh process
(:mod:`trimzoo.utils.process`), round-robin timing
(:mod:`trimzoo.utils.timing`), the CPU's low-precision units
(:mod:`trimzoo.utils.hardware`), where the embedded real data lives
(:mod:`trimzoo.utils.embedded`) and matplotlib with its file-only backend
(:mod:`trimzoo.utils.figures`). Nothing here imports the rest of trimzoo."""
