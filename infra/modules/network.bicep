@description('Prefix for resource names.')
param namePrefix string

@description('Azure region.')
param location string

@description('Address space of the VNet.')
param addressPrefix string = '10.40.0.0/16'

// Private DNS zones for every private endpoint and the PostgreSQL delegated subnet.
var dnsZoneNames = {
  blob: 'privatelink.blob.${environment().suffixes.storage}'
  queue: 'privatelink.queue.${environment().suffixes.storage}'
  table: 'privatelink.table.${environment().suffixes.storage}'
  file: 'privatelink.file.${environment().suffixes.storage}'
  vault: 'privatelink.vaultcore.azure.net'
  redis: 'privatelink.redis.azure.net'
  openai: 'privatelink.openai.azure.com'
  postgres: '${namePrefix}.private.postgres.database.azure.com'
}

resource vnet 'Microsoft.Network/virtualNetworks@2024-05-01' = {
  name: '${namePrefix}-vnet'
  location: location
  properties: {
    addressSpace: { addressPrefixes: [ addressPrefix ] }
    subnets: [
      {
        name: 'functions'
        properties: {
          addressPrefix: cidrSubnet(addressPrefix, 24, 0)
          delegations: [
            {
              name: 'serverFarms'
              properties: { serviceName: 'Microsoft.Web/serverFarms' }
            }
          ]
        }
      }
      {
        name: 'private-endpoints'
        properties: {
          addressPrefix: cidrSubnet(addressPrefix, 24, 1)
          privateEndpointNetworkPolicies: 'Disabled'
        }
      }
      {
        name: 'postgres'
        properties: {
          addressPrefix: cidrSubnet(addressPrefix, 24, 2)
          delegations: [
            {
              name: 'flexibleServers'
              properties: { serviceName: 'Microsoft.DBforPostgreSQL/flexibleServers' }
            }
          ]
        }
      }
    ]
  }
}

resource zones 'Microsoft.Network/privateDnsZones@2024-06-01' = [for zone in items(dnsZoneNames): {
  name: zone.value
  location: 'global'
}]

resource links 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2024-06-01' = [for (zone, i) in items(dnsZoneNames): {
  parent: zones[i]
  name: '${namePrefix}-link'
  location: 'global'
  properties: {
    registrationEnabled: false
    virtualNetwork: { id: vnet.id }
  }
}]

output vnetId string = vnet.id
output functionsSubnetId string = vnet.properties.subnets[0].id
output privateEndpointSubnetId string = vnet.properties.subnets[1].id
output postgresSubnetId string = vnet.properties.subnets[2].id
output dnsZoneIds object = toObject(items(dnsZoneNames), zone => zone.key, zone => resourceId('Microsoft.Network/privateDnsZones', zone.value))
