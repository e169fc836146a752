"""The tray app: an icon that shows the agent's state, a menu over the ``App`` facade, and
PIN-protected controls. icon.py (pystray) → menu.py (what is shown) → controls.py (what the
entries do) → dialogs.py (Tk windows)."""
