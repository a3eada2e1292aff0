"""Pure domain rules: no Flask, no database; data the rules need is passed in."""
