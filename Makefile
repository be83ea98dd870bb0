# Shortcuts; dev.py does the work and needs only Python.
.PHONY: run test lint install
run:
	python3 dev.py run
test:
	python3 dev.py test
lint:
	python3 dev.py lint
install:
	python3 dev.py install
