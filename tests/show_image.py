"""Show pictures in a plain X window until killed: a stand-in for a browser or image viewer.

    python tests/show_image.py WIDTHxHEIGHT+X+Y IMAGE [IMAGE ...] [--every SECONDS]

With several images it cycles through them (a moving benign "video")."""

from __future__ import annotations

import itertools
import sys
import tkinter

from PIL import Image, ImageTk


def main() -> int:
    args = sys.argv[1:]
    every = 0.0
    if "--every" in args:
        i = args.index("--every")
        every = float(args[i + 1])
        del args[i:i + 2]
    geometry, paths = args[0], args[1:]
    size = tuple(int(v) for v in geometry.split("+")[0].split("x"))
    root = tkinter.Tk(className="veil-test-viewer")
    root.overrideredirect(True)  # no window manager on Xvfb: place it exactly
    root.geometry(geometry)
    photos = [ImageTk.PhotoImage(Image.open(p).convert("RGB").resize(size)) for p in paths]
    label = tkinter.Label(root, bd=0, image=photos[0])
    label.pack()
    cycle = itertools.cycle(photos)

    def advance() -> None:
        label.configure(image=next(cycle))
        root.after(int(every * 1000), advance)

    if every and len(photos) > 1:
        root.after(int(every * 1000), advance)
    print("shown", flush=True)
    root.mainloop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
