import pathlib

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / 'fixtures' / 'libvirt'


def read(name: str) -> str:
    return (FIXTURES / name).read_text()
