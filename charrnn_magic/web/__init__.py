"""The model as a web page: ``export.py`` assembles ``engine.js``, ``page.js`` and ``page.css``
(plain JavaScript and CSS, no build step) with the model's data into one HTML file."""
