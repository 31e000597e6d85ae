"""``grokpipe tui``: a Textual app that browses results and follows runs while they train.

It is a face over :mod:`grokpipe.store`'s reading API: workers read files, widgets render.
"""
