"""Actions change the world (move, blur, overlay) and must never lose a user's file."""
