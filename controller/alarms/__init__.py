"""Alarms: the desk that decides them (ISA-18.2 states, shelving, floods) and the watch
that keeps them current."""
