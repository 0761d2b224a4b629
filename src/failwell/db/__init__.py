"""One database package: the engine (SQLite or PostgreSQL), every table, the migrations.

``kb``, ``governance`` and ``web`` each keep their own store functions over these tables;
nothing else opens connections or defines tables.
"""
