"""Autostart templates for Linux, Windows and macOS (data only; see installers/README.md).

``@RUN@`` stands for the command line that runs the agent (``veil run``, by absolute path, with
``--config`` when a config file is in use); ``@PROGRAM@``/``@ARGUMENTS@`` for the same split in
two (Windows) and ``@ARGS@`` for it as plist strings (macOS). `veil install` fills them in."""
