from .ssdlite import SSDLite

__all__ = ['SSDLite']
