"""Chores shared by every part of trimzoo, one helper each: atomic file
writes (:mod:`trimzoo.utils.io`), running a function in a fresh process
(:mod:`trimzoo.utils.process`) and round-robin timing
(:mod:`trimzoo.utils.timing`). Nothing here imports the rest of trimzoo."""
