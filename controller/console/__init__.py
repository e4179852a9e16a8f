"""The console: the web pages technicians and pharmacists work at, served beside the API."""
