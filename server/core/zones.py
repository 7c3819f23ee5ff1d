"""The school's time zone default, in a module of its own so that every part (settings, tables,
messages) can name it without importing the others."""

DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"
