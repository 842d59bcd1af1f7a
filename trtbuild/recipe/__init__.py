"""Stage 1 — the recipe: TOML → typed, checked recipe; toolchain pins; recorded CLI specs; model facts;
locks."""
